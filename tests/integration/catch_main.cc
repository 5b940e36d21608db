// Catch2's main() for the integration test binaries (built once, linked into each).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
