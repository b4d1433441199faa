# FCOS with general-distribution boxes (HikariTJU/LD configs/gfl/fcos_gfl_r50_center.py): centre sampling,
# centre-ness on the box tower, focal loss, GIoU (weight 1) weighted by centre-ness; the box branch predicts
# reg_max + 1 bins per edge (ld.models.distribution_heads), from points at the anchor-based heads' centres.
# A template: detectors/ put it on a backbone.
fcos = dict(
    type='FCOS',
    bbox_head=dict(
        _delete_=True,
        type='FCOSGFLHead',
        num_classes=3,  # ld.data.synth.CLASSES; the data stage sets a real dataset's
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        reg_max=16,
        strides=[8, 16, 32, 64, 128],
        point_offset=0.0,
        bbox_coder=dict(type='PriorCenterDistanceCoder'),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        norm_on_bbox=False,
        centerness_on_reg=True,
        center_sampling=True,
        conv_bias=True,
        # mmdet's FCOSHead default, in pixels at 1333x800: a profile scales it with its anchor_scale
        regress_ranges=((-1, 64), (64, 128), (128, 256), (256, 512), (512, 1e8))))
