import Kernels

// Shape letters: O output channels, I input channels per group, H/W kernel height/width.

/// Converts between the parameter store and a PyTorch-style state dict: torchvision names,
/// PyTorch layouts (conv OIHW, linear [out, in]), BatchNorm buffers with an I64
/// `num_batches_tracked`, in registration (= torchvision state-dict) order.
public enum StateDict {
    /// Model tensors (parameters and buffers) as safetensors records.
    public static func records(of store: ParameterStore) -> [SafeTensorRecord] {
        // Order is irrelevant in the file: the safetensors writer sorts by dtype alignment and name.
        var records = store.parameters.map { p in
            floatRecord(p.name, shape: p.shape, values: pytorchLayout(store.value(p), entry: p))
        }
        records += store.buffers.map { bufferRecord($0, store: store) }
        return records
    }

    /// Loads model tensors like `load_state_dict(strict=True)`: every name must be present with
    /// its exact shape and dtype, and nothing unexpected may remain. `ignoringPrefixes` names
    /// prefixes of extra records to skip (e.g. optimizer state in a checkpoint);
    /// `keepingInitialised` names model tensors to leave as they are (a replaced classifier head).
    /// Everything is checked before anything is written: a failed load leaves the model as it was.
    public static func load(_ records: [String: SafeTensorRecord], into store: ParameterStore,
                            source: String, ignoringPrefixes: [String] = [],
                            keepingInitialised: Set<String> = []) throws {
        var missing: [String] = [], wrong: [String] = []
        var writes: [() throws -> Void] = []
        var expected = keepingInitialised
        for p in store.parameters where !keepingInitialised.contains(p.name) {
            expected.insert(p.name)
            guard let r = records[p.name] else { missing.append(p.name); continue }
            guard r.dtype == .f32, r.shape == p.shape else {
                wrong.append("\(p.name): file has \(r.dtype.rawValue)\(r.shape), model needs F32\(p.shape)"); continue
            }
            writes.append {
                let values = try r.floats()
                values.withUnsafeBufferPointer { fromPytorchLayout($0.baseAddress!, entry: p, into: store.value(p)) }
            }
        }
        for b in store.buffers where !keepingInitialised.contains(b.name) {
            expected.insert(b.name)
            guard let r = records[b.name] else { missing.append(b.name); continue }
            switch b.kind {
            case .float32:
                guard r.dtype == .f32, r.shape == b.shape else {
                    wrong.append("\(b.name): file has \(r.dtype.rawValue)\(r.shape), model needs F32\(b.shape)"); continue
                }
                writes.append { store.floatBuffer(b).update(from: try r.floats(), count: b.count) }
            case .int64:
                guard r.dtype == .i64, r.shape == b.shape else {
                    wrong.append("\(b.name): file has \(r.dtype.rawValue)\(r.shape), model needs I64\(b.shape)"); continue
                }
                writes.append { store.intBuffer(b).update(from: try r.int64s(), count: b.count) }
            }
        }
        let unexpected = records.keys.filter { name in
            !expected.contains(name) && !ignoringPrefixes.contains { name.hasPrefix($0) }
        }.sorted()
        if !missing.isEmpty || !unexpected.isEmpty || !wrong.isEmpty {
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.joined(separator: ", "))") }
            if !unexpected.isEmpty { parts.append("unexpected \(unexpected.joined(separator: ", "))") }
            if !wrong.isEmpty { parts.append("wrong shape \(wrong.joined(separator: "; "))") }
            throw StateDictError("\(source): state dict does not match the model: " + parts.joined(separator: "; "))
        }
        for write in writes { try write() }
    }

    static func floatRecord(_ name: String, shape: [Int], values: [Float]) -> SafeTensorRecord {
        SafeTensorRecord(name: name, dtype: .f32, shape: shape, floats: values)
    }

    static func bufferRecord(_ b: BufferEntry, store: ParameterStore) -> SafeTensorRecord {
        switch b.kind {
        case .float32:
            return SafeTensorRecord(name: b.name, dtype: .f32, shape: b.shape,
                                    floats: Array(UnsafeBufferPointer(start: store.floatBuffer(b), count: b.count)))
        case .int64:
            return SafeTensorRecord(name: b.name, dtype: .i64, shape: b.shape,
                                    int64s: Array(UnsafeBufferPointer(start: store.intBuffer(b), count: b.count)))
        }
    }

    /// A parameter's values in PyTorch's layout.
    public static func pytorchLayout(_ values: UnsafePointer<Float>, entry p: ParameterEntry) -> [Float] {
        switch p.layout {
        case .pytorch:
            return Array(UnsafeBufferPointer(start: values, count: p.count))
        case .convOHWI:
            let (o, i, h, w) = (p.shape[0], p.shape[1], p.shape[2], p.shape[3])
            var out = [Float](repeating: 0, count: p.count)
            for oo in 0..<o { for hh in 0..<h { for ww in 0..<w { for ii in 0..<i {
                out[((oo * i + ii) * h + hh) * w + ww] = values[((oo * h + hh) * w + ww) * i + ii]
            } } } }
            return out
        }
    }

    /// Writes PyTorch-layout values into the store's layout.
    public static func fromPytorchLayout(_ values: UnsafePointer<Float>, entry p: ParameterEntry,
                                         into destination: UnsafeMutablePointer<Float>) {
        switch p.layout {
        case .pytorch:
            destination.update(from: values, count: p.count)
        case .convOHWI:
            let (o, i, h, w) = (p.shape[0], p.shape[1], p.shape[2], p.shape[3])
            for oo in 0..<o { for hh in 0..<h { for ww in 0..<w { for ii in 0..<i {
                destination[((oo * h + hh) * w + ww) * i + ii] = values[((oo * i + ii) * h + hh) * w + ww]
            } } } }
        }
    }
}

public struct StateDictError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
