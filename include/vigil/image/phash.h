#pragma once
/// Perceptual hashing for near-duplicate detection: visually similar images get hashes a few bits apart.

#include <opencv2/core.hpp>

#include <cstdint>

namespace vigil::image {

/// 64-bit DCT perceptual hash (the classic pHash as computed by Python's `imagehash.phash`): grayscale,
/// resize to 32x32 with INTER_AREA, 2-D DCT, keep the top-left 8x8 low-frequency block *including* the DC
/// term, and set bit (row * 8 + col) when that coefficient is strictly greater than the median of the 64.
/// The DC term is always above the median, so bit 0 is constant; it is kept for compatibility with imagehash.
/// Accepts 1-, 3- (BGR) or 4-channel (BGRA) 8-bit images; throws InvalidArgument for an empty image.
uint64_t phash(const cv::Mat& bgr);

/// Number of differing bits.
int hamming(uint64_t a, uint64_t b);

}  // namespace vigil::image
