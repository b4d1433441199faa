# ATSS (general-distribution boxes, ../atss.py) on ResNet-18.
_base_ = ['../backbones/r18.py', '../atss.py']
model = {{_base_.atss}}
