# GFocalV1 (mmdet's GFL, R-50 FPN 1x) on the embedded dataset. The profile (params.yaml) fills in the
# data root, image size, widths, epochs, batch, LR and whether backbones start from pretrained weights.
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'

# ld.models registers the heads, the distiller and the voting NMS; the engine modules the run's hooks
custom_imports = dict(imports=['ld.models', 'ld.engine.live', 'ld.engine.determinism'], allow_failed_imports=False)

classes = ('disc', 'square', 'triangle')  # ld.data.synth.CLASSES
schedule = '1x'  # a name the profile maps to epochs and LR steps (1x: 12 epochs, steps [8, 11] on COCO)
# Images per GPU of upstream's GFocalV1 LD recipe: the LD README's "mini-batch 6" is 2 GPUs x 3 at lr 0.00375
# (HikariTJU/LD configs/ld/ld_gflv1_r101_r18_fpn_coco_1x.py: samples_per_gpu=3). A profile may fix it.
samples_per_gpu = 3
multiscale = None  # or (lo, hi): short edges of a random resize at the 1333x800 size (upstream's ms-2x rows)

model = dict(bbox_head=dict(num_classes=len(classes)))

_dataset = dict(metainfo=dict(classes=classes), data_prefix=dict(img='JPEGImages/'))
train_dataloader = dict(dataset=dict(ann_file='annotations/instances_train.json', **_dataset))
val_dataloader = dict(dataset=dict(ann_file='annotations/instances_val.json', **_dataset))
test_dataloader = val_dataloader
