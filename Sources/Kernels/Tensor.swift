#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// Shape letters used across the engine: N batch, H/W height/width, C channels.
// Activations are NHWC float32; a 2-D [N, C] matrix is an NHWC tensor with H = W = 1.

/// A growable, 64-byte aligned float buffer. Capacity only ever grows, so a buffer sized on
/// the first training step is reused without allocation afterwards.
public final class FloatStorage: @unchecked Sendable {
    // @unchecked Sendable: the storage is a raw buffer handed between the loader thread and the
    // trainer through a queue that transfers ownership; it is never written by two threads at once.
    public private(set) var pointer: UnsafeMutablePointer<Float>
    public private(set) var capacity: Int

    public init(capacity: Int = 0) {
        self.capacity = max(capacity, 0)
        self.pointer = FloatStorage.allocate(max(capacity, 1))
    }

    deinit { free(pointer) }

    /// Makes room for `count` floats. Contents are not preserved when it grows.
    public func reserve(_ count: Int) {
        guard count > capacity else { return }
        free(pointer)
        pointer = FloatStorage.allocate(count)
        capacity = count
    }

    static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, (bytes + 63) & ~63) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes")
        }
        return raw.bindMemory(to: Float.self, capacity: count)
    }
}

/// An NHWC float tensor whose storage is reused across steps (see `FloatStorage`).
public final class Tensor: @unchecked Sendable {
    // @unchecked Sendable: same ownership-transfer discipline as FloatStorage.
    public private(set) var n: Int
    public private(set) var h: Int
    public private(set) var w: Int
    public private(set) var c: Int
    public let storage: FloatStorage
    /// Holds on a pooled gradient; 0 for a tensor outside the pool discipline, which backward
    /// never overwrites (Note [Gradient pool] in TensorPool.swift).
    public internal(set) var holders = 0
    /// The pool a managed tensor returns to when its last holder releases it (nil: none, it is
    /// simply dropped). Weak, because the pool owns its tensors.
    public internal(set) weak var pool: TensorPool?

    public init(n: Int = 0, h: Int = 1, w: Int = 1, c: Int = 0) {
        self.n = n; self.h = h; self.w = w; self.c = c
        storage = FloatStorage(capacity: n * h * w * c)
    }

    public convenience init(n: Int, h: Int, w: Int, c: Int, values: [Float]) {
        self.init(n: n, h: h, w: w, c: c)
        precondition(values.count == count, "expected \(count) values, got \(values.count)")
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }

    @inlinable public var count: Int { n &* h &* w &* c }
    @inlinable public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var shape: [Int] { [n, h, w, c] }

    /// Shape checks for hot paths: `shape` builds an array (a heap allocation) every time.
    @inlinable public func hasShape(_ n: Int, _ h: Int, _ w: Int, _ c: Int) -> Bool {
        self.n == n && self.h == h && self.w == w && self.c == c
    }
    @inlinable public func hasSameShape(as other: Tensor) -> Bool { hasShape(other.n, other.h, other.w, other.c) }

    /// Sets the shape, growing the storage if needed. Contents are unspecified afterwards
    /// unless the element count did not grow past the capacity.
    public func resize(n: Int, h: Int, w: Int, c: Int) {
        self.n = n; self.h = h; self.w = w; self.c = c
        storage.reserve(n * h * w * c)
    }

    public func resize(like other: Tensor) { resize(n: other.n, h: other.h, w: other.w, c: other.c) }

    public func zero() { pointer.update(repeating: 0, count: count) }

    public func copy(from other: Tensor) {
        resize(like: other)
        pointer.update(from: other.pointer, count: count)
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
