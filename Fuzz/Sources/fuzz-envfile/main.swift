// Env files (`KEY=value`, Config/EnvFile.swift): /etc/laju-backup/*.env, conf.d profiles, the app's
// .env and --env-file, decoded as EnvFile.load decodes them.
import FuzzSupport
@testable import LajuBackup

@_cdecl("fuzz_envfile_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzOne)
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = fuzzText(data, size)
    do {
        let values = try EnvFile.parse(text, source: "fuzz.env")
        for name in values.keys {
            fuzzCheck(
                !name.isEmpty && name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }),
                "accepted the variable name \(name.debugDescription)")
        }
    } catch let error as LajuError {
        // Every refusal names the file and the line.
        fuzzCheck(error.message.hasPrefix("fuzz.env:"), "a refusal without file and line: \(error.message)")
    } catch {
        fuzzCheck(false, "unexpected error type \(type(of: error))")
    }
    return 0
}
