# GFocalV1 (mmdet's GFL: R-50 FPN, ATSS assigner, QFL + DFL) on the profile's data: the detector every row
# starts from, on the embedded dataset as on COCO and VOC. The profile (params.yaml) fills in the data root,
# image size, widths, epochs, batch, LR and whether backbones start from pretrained weights. A row adds a
# schedule (schedules/); backbones/ swap the R-50 for another, students/ put a detector under the LD recipe.
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'

# ld.models registers the heads, the distiller and the voting NMS; the engine modules the run's hooks
custom_imports = dict(imports=['ld.models', 'ld.engine.live', 'ld.engine.determinism', 'ld.engine.nonfinite'],
                      allow_failed_imports=False)

classes = ('disc', 'square', 'triangle')  # ld.data.synth.CLASSES

model = dict(bbox_head=dict(num_classes=len(classes)))

_dataset = dict(metainfo=dict(classes=classes), data_prefix=dict(img='JPEGImages/'))
train_dataloader = dict(dataset=dict(ann_file='annotations/instances_train.json', **_dataset))
val_dataloader = dict(dataset=dict(ann_file='annotations/instances_val.json', **_dataset))
test_dataloader = val_dataloader
