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
    public static func map<Worker, R: Sendable>(
        count: Int, workers: Int = cores,
        makeWorker: @Sendable () -> Worker, _ transform: @Sendable (inout Worker, Int) -> R
    ) -> [R] {
        guard count > 0 else { return [] }
        let next = Atomic<Int>(0)
        let results = Mutex<[R?]>(Array(repeating: nil, count: count))
        DispatchQueue.concurrentPerform(iterations: Swift.max(1, Swift.min(workers, count))) { _ in
            var worker = makeWorker()
            while true {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < count else { return }
                let value = transform(&worker, index)
                results.withLock { $0[index] = value }
            }
        }
        return results.withLock { $0.map { $0! } }
    }

    /// `items.map(transform)` over every core.
    public static func map<T: Sendable, R: Sendable>(_ items: [T], _ transform: @Sendable (T) -> R) -> [R] {
        map(count: items.count, makeWorker: {}, { _, index in transform(items[index]) })
    }
}
