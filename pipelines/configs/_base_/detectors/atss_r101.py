# ATSS (general-distribution boxes, ../atss.py) on ResNet-101.
_base_ = ['../backbones/r101.py', '../atss.py']
model = {{_base_.atss}}
