import Dispatch
import Foundation
import Synchronization

/// `items.map(transform)` spread over every core: workers take the next item
/// from a shared counter, so long items do not hold up short ones.
func parallelMap<T: Sendable, R: Sendable>(_ items: [T], _ transform: @Sendable (T) -> R) -> [R] {
    let workers = Swift.max(1, Swift.min(ProcessInfo.processInfo.activeProcessorCount, items.count))
    let next = Atomic<Int>(0)
    let results = Mutex<[R?]>(Array(repeating: nil, count: items.count))
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
        while true {
            let index = next.add(1, ordering: .relaxed).oldValue
            guard index < items.count else { return }
            let value = transform(items[index])
            results.withLock { $0[index] = value }
        }
    }
    return results.withLock { $0.map { $0! } }
}
