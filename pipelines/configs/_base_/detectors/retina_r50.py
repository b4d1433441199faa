# RetinaNet (general-distribution boxes, ../retina.py) on ResNet-50.
_base_ = ['../gfl.py', '../retina.py']
model = {{_base_.retina}}
