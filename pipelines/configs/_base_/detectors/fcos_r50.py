# FCOS (general-distribution boxes, ../fcos.py) on ResNet-50.
_base_ = ['../gfl.py', '../fcos.py']
model = {{_base_.fcos}}
