# RetinaNet (general-distribution boxes, ../retina.py) on ResNet-18.
_base_ = ['../backbones/r18.py', '../retina.py']
model = {{_base_.retina}}
