# GFocalV1 (mmdet's GFL, R-50 FPN 1x) on the embedded dataset. The profile (params.yaml) fills in the
# data root, image size, widths, epochs, batch, LR and whether backbones start from pretrained weights.
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['ld'], allow_failed_imports=False)

classes = ('disc', 'square', 'triangle')  # ld.data.synth.CLASSES
schedule = '1x'  # a name the profile maps to a number of epochs

model = dict(bbox_head=dict(num_classes=len(classes)))

_dataset = dict(metainfo=dict(classes=classes), data_prefix=dict(img='JPEGImages/'))
train_dataloader = dict(dataset=dict(ann_file='annotations/instances_train.json', **_dataset))
val_dataloader = dict(dataset=dict(ann_file='annotations/instances_val.json', **_dataset))
test_dataloader = val_dataloader
