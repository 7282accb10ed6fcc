/// The version this build reports (`--version`, the `tool` metadata of every object, User-Agent).
public enum LajuBackupVersion {
    public static let string = "0.1.0"
}
