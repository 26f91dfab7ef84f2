#!/usr/bin/python3
"""Generates uint8-mean.onnx: a tiny image model whose input is uint8 NHWC.

images uint8 [1,224,224,3] -> Cast(float) -> Mul(1/255) -> ReduceMean(axes=[1,2]) -> means float [1,3]

The output is the per-channel mean of the input in 0..1. Run with /usr/bin/python3 (onnx 1.12):
    /usr/bin/python3 make_uint8_mean.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

graph = helper.make_graph(
    nodes=[
        helper.make_node("Cast", ["images"], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["as_float", "inv255"], ["scaled"]),
        helper.make_node("ReduceMean", ["scaled"], ["means"], axes=[1, 2], keepdims=0),
    ],
    name="uint8_mean",
    inputs=[helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 224, 224, 3])],
    outputs=[helper.make_tensor_value_info("means", TensorProto.FLOAT, [1, 3])],
    initializer=[numpy_helper.from_array(np.array(1.0 / 255.0, dtype=np.float32), "inv255")],
)
model = helper.make_model(graph, producer_name="edgerunner-tests", opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 7
onnx.checker.check_model(model)
onnx.save(model, os.path.join(os.path.dirname(os.path.abspath(__file__)), "uint8-mean.onnx"))
