# ATSS (general-distribution boxes, ../atss.py) on ResNet-50.
_base_ = ['../gfl.py', '../atss.py']
model = {{_base_.atss}}
