// The library needs only FoundationEssentials (no ICU data): it keeps the static binary small.
#if canImport(FoundationEssentials)
    @_exported import FoundationEssentials
#else
    @_exported import Foundation
#endif
