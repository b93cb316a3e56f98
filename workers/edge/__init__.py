"""The edge backends: one LCM SD1.5 pipeline in numpy over two runtimes.

``onnx`` runs the graphs on ONNX Runtime (x86 and ARM CPUs); ``rknn`` runs the
same graphs converted for Rockchip RK3588 NPUs on ``rknnlite.api.RKNNLite``
(an ONNX Runtime stand-in with the same surface where that package is absent).
Neither imports torch.
"""
