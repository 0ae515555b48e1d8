#if canImport(Glibc)
import Glibc
#endif

/// The one place that loops over partial `read`/`write` results and `EINTR`. Callers turn an
/// `IOFailure` into their own error, naming the file in the user's terms.
public enum FileIO {
    /// Why a read or write stopped: the system's error number (`EIO` for a write that wrote nothing,
    /// 0 for a read that reached the end of the file early) and how many bytes had been done.
    public struct IOFailure: Error, Sendable, CustomStringConvertible {
        public var errorNumber: Int32
        public var done: Int

        public var description: String {
            errorNumber == 0 ? "the file ended after \(done) bytes" : "\(String(cString: strerror(errorNumber))) after \(done) bytes"
        }
    }

    /// Writes all of `bytes` to `descriptor`, at `offset` when given (`pwrite`), else at its position.
    public static func write(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int? = nil) throws(IOFailure) {
        var done = 0
        while done < bytes.count {
            let n =
                offset.map { pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t($0 + done)) }
                ?? Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw IOFailure(errorNumber: n < 0 ? errno : EIO, done: done) }
            done += n
        }
    }

    /// Fills `buffer` from `descriptor`, at `offset` when given (`pread`), else from its position.
    public static func read(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int? = nil) throws(IOFailure) {
        var done = 0
        while done < buffer.count {
            let n =
                offset.map { pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t($0 + done)) }
                ?? Glibc.read(descriptor, buffer.baseAddress! + done, buffer.count - done)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw IOFailure(errorNumber: n < 0 ? errno : 0, done: done) }
            done += n
        }
    }

    /// `strerror(errno)` as a Swift string.
    public static func describe(errorNumber: Int32) -> String { String(cString: strerror(errorNumber)) }
}
