// Meta's arithmetic coder (facebookresearch/encodec, encodec/quantization/ac.py: ArithmeticCoder and
// ArithmeticDecoder), ported bit for bit. Pure C++: the quantized CDFs come from quantized_cdf.h.
//
// The coder keeps an integer range [low, high] that is rescaled by powers of two whenever it is narrower than
// 2^total_range_bits; bits common to low and high are written out (one bit at a time, packed least-significant
// bit first into bytes, like Meta's BitPacker(bits=1)). Meta's Python integers are unbounded: here low/high are
// 128-bit, enough for every state Meta's coder accepts (it asserts max_bit <= 61 after each symbol; within a
// symbol the range is doubled at most total_range_bits + 1 more times).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace encodec {

// A coded stream that cannot be decoded with the given CDFs: corrupt or truncated data, or CDFs that differ
// from the ones it was written with (another LM, or the same LM computing slightly different probabilities).
class StreamError : public std::runtime_error {
 public:
  explicit StreamError(const std::string& message) : std::runtime_error(message) {}
};

class ArithmeticEncoder {
 public:
  // Appends the coded bytes to `out`.
  explicit ArithmeticEncoder(std::vector<uint8_t>* out, int total_range_bits = 24);

  // Codes `symbol` (0 <= symbol < cardinality) with `quantized_cdf` (cardinality increasing values, see
  // quantized_cdf.h). Throws std::logic_error where Meta's coder would fail an assertion.
  void Push(int64_t symbol, const int64_t* quantized_cdf, int64_t cardinality);
  // Writes the remaining bits of the range and pads the last byte with zero bits.
  void Flush();

  int total_range_bits() const { return total_range_bits_; }

 private:
  void PushBit(unsigned bit);
  void FlushCommonPrefix();

  std::vector<uint8_t>* out_;
  int total_range_bits_;
  unsigned __int128 low_ = 0, high_ = 0;
  int max_bit_ = -1;
  unsigned pending_value_ = 0;  // BitPacker: bits not yet written, least significant first
  int pending_bits_ = 0;
};

class ArithmeticDecoder {
 public:
  // Reads from data[0, size): the bytes are not copied and must outlive the decoder.
  ArithmeticDecoder(const uint8_t* data, size_t size, int total_range_bits = 24);

  // Decodes one symbol with `quantized_cdf`. Returns false when the data ends before the symbol is complete
  // (Meta's pull() returning None). Throws StreamError when no symbol's range holds the stream's value (Meta:
  // "Binary search failed") or the range outgrows what Meta's encoder can write.
  bool Pull(const int64_t* quantized_cdf, int64_t cardinality, int64_t* symbol);

  // Bytes consumed so far (Meta's decoder reads a byte when it needs its first bit).
  size_t bytes_read() const { return pos_; }
  // Whether the stream ends the way Meta's encoder ends one after the symbols decoded so far: the bits read
  // since the last common prefix are the low end of the range, and the last byte's unread bits are zero.
  bool EndsCleanly() const;

 private:
  bool PullBit(unsigned* bit);
  void FlushCommonPrefix();

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  int total_range_bits_;
  unsigned __int128 low_ = 0, high_ = 0, current_ = 0;
  int max_bit_ = -1;
  unsigned pending_value_ = 0;  // BitUnpacker: bits of the current byte not yet used, least significant first
  int pending_bits_ = 0;
};

}  // namespace encodec
