# RetinaNet with general-distribution boxes (HikariTJU/LD configs/gfl/retinagfl_r101_2x_coco.py): 9 anchors
# per location (3 scales x 3 ratios) assigned by IoU (0.5 / 0.4), focal loss, GIoU (weight 2) on the decoded
# boxes; each anchor's box branch predicts reg_max + 1 bins per edge from the location's centre
# (ld.models.distribution_heads); the FPN's extra levels from its input, as upstream's.
# A template: detectors/ put it on a backbone.
retina = dict(
    type='RetinaNet',
    neck=dict(add_extra_convs='on_input'),
    bbox_head=dict(
        _delete_=True,
        type='RetinaGFLHead',
        num_classes=3,  # ld.data.synth.CLASSES; the data stage sets a real dataset's
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        reg_max=16,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                              ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='PriorCenterDistanceCoder'),
        reg_decoded_bbox=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        _delete_=True,
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False))
