"""Writing a trained model to serve: Keras, SavedModel with named outputs, ONNX, flip
averaging, multi-task exports, and reading an export's output kind back."""
