# FCOS (general-distribution boxes, ../fcos.py) on ResNet-101.
_base_ = ['../backbones/r101.py', '../fcos.py']
model = {{_base_.fcos}}
