import Kernels

/// An optimizer updates the flat parameter buffer of one `ParameterStore` from its flat
/// gradient buffer; its state lives in flat buffers laid out like the parameters, so a
/// checkpoint or a rank-0 broadcast handles every kind of optimizer the same way.
public protocol Optimizer: AnyObject {
    var store: ParameterStore { get }

    /// One optimizer step. `gradientScale` multiplies every gradient first (the 1/worldSize of
    /// averaging summed gradients, folded into the same pass). `range` restricts the update to
    /// part of the flat buffer (a frozen backbone passes the head's range); nil = everything.
    /// Each call is one step: `stepCount` goes up by one whatever the range.
    func step(learningRate: Float, gradientScale: Float, range: Range<Int>?)

    /// Named per-parameter state, each `store.parameterCount` floats laid out like
    /// `store.values` (torch's state names: "momentum_buffer", "exp_avg", "exp_avg_sq").
    var stateBuffers: [OptimizerStateBuffer] { get }

    /// Steps taken so far (torch's `state["step"]`). Adam's bias corrections depend on it and
    /// SGD with dampening treats step 0 specially, so a resumed run must restore it.
    var stepCount: Int { get set }
}

/// One named optimizer state array (count = `store.parameterCount`), owned by the optimizer.
public struct OptimizerStateBuffer {
    public let name: String
    public let pointer: UnsafeMutablePointer<Float>

    public init(name: String, pointer: UnsafeMutablePointer<Float>) {
        self.name = name
        self.pointer = pointer
    }
}
