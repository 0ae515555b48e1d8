import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Work spread over every core, for the per-tensor loops of readers, passes and reports.
public enum Parallel {
    /// The number of cores online.
    public static let cores: Int = {
        #if canImport(Glibc)
        return Swift.max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return 1
        #endif
    }()

    /// `(0..<count).map(transform)` on up to `workers` threads. Each worker makes its own state with
    /// `makeWorker` (scratch memory) and takes the next index from a shared counter, so long items
    /// do not hold up short ones. Results come back in index order.
    ///
    /// When `transform` throws, no new item is started and the error of the lowest failing index is
    /// rethrown on the calling thread once every worker has stopped (a non-throwing `transform`
    /// makes `E` `Never`, and the call needs no `try`).
    public static func map<Worker, R: Sendable, E: Error>(
        count: Int, workers: Int = cores,
        makeWorker: @Sendable () -> Worker, _ transform: @Sendable (inout Worker, Int) throws(E) -> R
    ) throws(E) -> [R] {
        guard count > 0 else { return [] }
        let next = Atomic<Int>(0)
        let results = Mutex<[R?]>(Array(repeating: nil, count: count))
        let failure = Mutex<Failure<E>?>(nil)
        DispatchQueue.concurrentPerform(iterations: Swift.max(1, Swift.min(workers, count))) { _ in
            var worker = makeWorker()
            while true {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < count else { return }
                do throws(E) {
                    let value = try transform(&worker, index)
                    results.withLock { $0[index] = value }
                } catch {
                    failure.withLock { if $0 == nil || $0!.index > index { $0 = Failure(index: index, error: error) } }
                    next.store(count, ordering: .relaxed)
                    return
                }
            }
        }
        if let failure = failure.withLock({ $0 }) { throw failure.error }
        return results.withLock { $0.map { $0! } }
    }

    /// `items.map(transform)` over every core; see `map(count:workers:makeWorker:_:)` for errors.
    public static func map<T: Sendable, R: Sendable, E: Error>(_ items: [T], _ transform: @Sendable (T) throws(E) -> R) throws(E) -> [R] {
        try map(count: items.count, makeWorker: {}, { (_: inout Void, index: Int) throws(E) -> R in try transform(items[index]) })
    }

    /// The first error of a parallel map and the item that raised it. Only the calling thread reads
    /// it, after every worker has finished.
    private struct Failure<E: Error>: @unchecked Sendable {
        var index: Int
        var error: E
    }
}
