# RetinaNet (general-distribution boxes, ../retina.py) on ResNet-101.
_base_ = ['../backbones/r101.py', '../retina.py']
model = {{_base_.retina}}
