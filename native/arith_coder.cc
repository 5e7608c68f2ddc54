#include "arith_coder.h"

namespace encodec {

namespace {

using u128 = unsigned __int128;

// Meta's coder asserts max_bit <= 61 after every symbol.
constexpr int kMaxBitAfterSymbol = 61;
// CDF values beyond this cannot come from build_stable_quantized_cdf (at most about 2^total_range_bits); the
// bound keeps range * delta products far inside 64 bits.
constexpr int64_t kMaxCdfValue = int64_t{1} << 40;

struct Bounds {
  uint64_t low, high;  // Meta's effective_low / effective_high: the symbol's slice of the current range
};

// ceil(range_low * delta / 2^bits) and floor(range_high * delta / 2^bits). Meta computes them in float64, exactly:
// delta < 2^(bits + 1) and the CDF values are below 2^(bits + 1), so the products have at most 50 bits.
Bounds EffectiveBounds(const int64_t* cdf, int64_t symbol, uint64_t delta, int bits) {
  const int64_t range_low = symbol == 0 ? 0 : cdf[symbol - 1];
  const int64_t range_high = cdf[symbol] - 1;
  if (range_low < 0 || range_high < range_low || range_high >= kMaxCdfValue) {
    throw std::logic_error("arithmetic coder: invalid quantized CDF at symbol " + std::to_string(symbol) + " ([" +
                           std::to_string(range_low) + ", " + std::to_string(range_high) + "])");
  }
  const uint64_t one = uint64_t{1} << bits;
  return {(static_cast<uint64_t>(range_low) * delta + one - 1) >> bits, (static_cast<uint64_t>(range_high) * delta) >> bits};
}

// Shifts out the leading bits that low and high share (Meta's flush_common_prefix), calling shifted(bit, max_bit)
// for each before max_bit drops.
template <typename Shifted>
void DropCommonPrefix(u128& low, u128& high, int& max_bit, Shifted&& shifted) {
  while (max_bit >= 0) {
    const u128 b1 = low >> max_bit;
    if (b1 != high >> max_bit) break;
    low -= b1 << max_bit;
    high -= b1 << max_bit;
    shifted(b1, max_bit);
    max_bit -= 1;
  }
}

}  // namespace

// ---- encoder ----

ArithmeticEncoder::ArithmeticEncoder(std::vector<uint8_t>* out, int total_range_bits)
    : out_(out), total_range_bits_(total_range_bits) {
  if (total_range_bits < 1 || total_range_bits > 30) throw std::logic_error("total_range_bits must be in 1..30");
}

void ArithmeticEncoder::PushBit(unsigned bit) {
  pending_value_ += bit << pending_bits_;
  pending_bits_ += 1;
  if (pending_bits_ >= 8) {
    out_->push_back(static_cast<uint8_t>(pending_value_ & 0xff));
    pending_bits_ -= 8;
    pending_value_ >>= 8;
  }
}

void ArithmeticEncoder::FlushCommonPrefix() {
  if (high_ < low_ || max_bit_ + 1 >= 127 || high_ >= (u128{1} << (max_bit_ + 1))) {
    throw std::logic_error("arithmetic coder: the range left its bounds (Meta's coder fails its assertion here too)");
  }
  DropCommonPrefix(low_, high_, max_bit_, [this](u128 bit, int) { PushBit(static_cast<unsigned>(bit)); });
}

void ArithmeticEncoder::Push(int64_t symbol, const int64_t* quantized_cdf, int64_t cardinality) {
  if (symbol < 0 || symbol >= cardinality) {
    throw std::logic_error("arithmetic coder: symbol " + std::to_string(symbol) + " outside [0, " +
                           std::to_string(cardinality) + ")");
  }
  const u128 full = u128{1} << total_range_bits_;
  while (high_ - low_ + 1 < full) {
    low_ <<= 1;
    high_ = (high_ << 1) | 1;
    max_bit_ += 1;
  }
  const uint64_t delta = static_cast<uint64_t>(high_ - low_ + 1);
  const Bounds b = EffectiveBounds(quantized_cdf, symbol, delta, total_range_bits_);
  high_ = low_ + b.high;
  low_ = low_ + b.low;
  FlushCommonPrefix();
  if (max_bit_ > kMaxBitAfterSymbol) {
    throw std::logic_error("arithmetic coder: the range needs more than 62 bits (Meta's coder fails here too)");
  }
}

void ArithmeticEncoder::Flush() {
  while (max_bit_ >= 0) {
    PushBit(static_cast<unsigned>((low_ >> max_bit_) & 1));
    max_bit_ -= 1;
  }
  if (pending_bits_ > 0) {
    out_->push_back(static_cast<uint8_t>(pending_value_));
    pending_value_ = 0;
    pending_bits_ = 0;
  }
}

// ---- decoder ----

ArithmeticDecoder::ArithmeticDecoder(const uint8_t* data, size_t size, int total_range_bits)
    : data_(data), size_(size), total_range_bits_(total_range_bits) {
  if (total_range_bits < 1 || total_range_bits > 30) throw std::logic_error("total_range_bits must be in 1..30");
}

bool ArithmeticDecoder::PullBit(unsigned* bit) {
  if (pending_bits_ < 1) {
    if (pos_ >= size_) return false;
    pending_value_ += static_cast<unsigned>(data_[pos_++]) << pending_bits_;
    pending_bits_ += 8;
  }
  *bit = pending_value_ & 1;
  pending_value_ >>= 1;
  pending_bits_ -= 1;
  return true;
}

void ArithmeticDecoder::FlushCommonPrefix() {
  DropCommonPrefix(low_, high_, max_bit_, [this](u128 bit, int max_bit) { current_ -= bit << max_bit; });
}

bool ArithmeticDecoder::Pull(const int64_t* quantized_cdf, int64_t cardinality, int64_t* symbol) {
  const u128 full = u128{1} << total_range_bits_;
  while (high_ - low_ + 1 < full) {
    unsigned bit = 0;
    if (!PullBit(&bit)) return false;
    low_ <<= 1;
    high_ = (high_ << 1) | 1;
    current_ = (current_ << 1) | bit;
    max_bit_ += 1;
  }
  const uint64_t delta = static_cast<uint64_t>(high_ - low_ + 1);
  // Meta's recursive bin_search, as a loop: the symbol whose slice of the range holds the stream's value.
  int64_t lo = 0, hi = cardinality - 1;
  for (;;) {
    if (hi < lo) {
      throw StreamError("no code's range holds the coded value (Meta's decoder: \"Binary search failed\")");
    }
    const int64_t mid = (lo + hi) / 2;
    const Bounds b = EffectiveBounds(quantized_cdf, mid, delta, total_range_bits_);
    const u128 low = low_ + b.low;
    const u128 high = low_ + b.high;
    if (current_ >= low) {
      if (current_ <= high) {
        *symbol = mid;
        low_ = low;
        high_ = high;
        break;
      }
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  FlushCommonPrefix();
  if (max_bit_ > kMaxBitAfterSymbol) {
    throw StreamError("the coded range outgrew what Meta's encoder can write (more than 62 pending bits)");
  }
  return true;
}

bool ArithmeticDecoder::EndsCleanly() const { return current_ == low_ && pending_value_ == 0; }

}  // namespace encodec
