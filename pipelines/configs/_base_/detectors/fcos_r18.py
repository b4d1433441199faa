# FCOS (general-distribution boxes, ../fcos.py) on ResNet-18.
_base_ = ['../backbones/r18.py', '../fcos.py']
model = {{_base_.fcos}}
