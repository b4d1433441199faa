# ATSS with general-distribution boxes (HikariTJU/LD configs/gfl/atss_gfl_r50_1x.py): GFocal's ATSS assigner
# and anchors, focal loss, GIoU (weight 2) weighted by centre-ness, centre-ness; the box branch predicts
# reg_max + 1 bins per edge (ld.models.distribution_heads). A template: detectors/ put it on a backbone.
atss = dict(
    type='ATSS',
    bbox_head=dict(
        _delete_=True,
        type='ATSSGFLHead',
        num_classes=3,  # ld.data.synth.CLASSES; the data stage sets a real dataset's
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        reg_max=16,
        anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8, scales_per_octave=1,
                              strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='PriorCenterDistanceCoder'),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)))
