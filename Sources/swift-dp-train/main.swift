print("swift-dp-train")
