extension Float {
    /// The Python float torch would hold for a hyperparameter that reached us as this Float:
    /// the shortest decimal that round-trips (what was typed, e.g. 0.9), read as a Double.
    /// torch derives its scalars (1 − β, bias corrections, schedule factors) from that double,
    /// not from Double(Float(0.9)) = 0.89999997…, so this keeps them a few ulps closer.
    public var pythonFloat: Double { Double(description) ?? Double(self) }
}
