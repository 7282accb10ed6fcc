/// Text from outside (keys, S3 messages, file names) made safe to print on a terminal or in a log:
/// control characters, which could move the cursor or rewrite earlier lines, become `\u{..}`.
public enum Display {
    public static func safe(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        for s in text.unicodeScalars {
            if needsEscape(s) {
                out += "\\u{" + String(s.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(s)
            }
        }
        return out
    }

    /// `safe(text)` in quotes, for values that may be empty or hold spaces.
    public static func quoted(_ text: String) -> String { "'" + safe(text) + "'" }

    static func needsEscape(_ s: Unicode.Scalar) -> Bool {
        isControl(s) || s.value == 0x2028 || s.value == 0x2029
    }

    /// C0 and C1 controls and DEL: never part of a key we make.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        s.value < 0x20 || (0x7F...0x9F).contains(s.value)
    }
}
