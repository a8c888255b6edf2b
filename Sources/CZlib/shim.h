/* CZlib: zlib for the HdrHistogram interval log's compressed histograms. No logic. */
#include <zlib.h>
