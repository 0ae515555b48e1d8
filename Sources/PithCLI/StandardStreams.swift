import Pith

/// Standard error as a text stream, written with every byte (retrying short writes).
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        bytes.withUnsafeMutableBytes { try? FileIO.write(2, UnsafeRawBufferPointer($0)) }
    }
}

func printError(_ message: String) {
    var standardError = StandardError()
    print(message, to: &standardError)
}
