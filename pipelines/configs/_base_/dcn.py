# Deformable convolutions in a ResNe(X)t / Res2Net backbone, as the LD README's "-DCN" rows (its note [3])
# and the released checkpoints they distil from: mmcv's 'DCN' (deformable conv v1, 18-channel offsets) in
# stages c3-c5 for R-101-DCN (mmdet configs/gfl/gfl_r101_fpn_dconv_c3-c5_mstrain_2x_coco.py, implus/GFocalV2
# configs/gfocal/gfocal_r101_dcn_fpn_ms2x.py) and c4-c5 for X-101-32x4d-DCN and Res2Net-101-DCN
# (gfl_x101_32x4d_fpn_dconv_c4-c5_mstrain_2x_coco.py, gfocal_x101_dcn_fpn_ms2x.py, gfocal_r2n101_dcn_fpn_ms2x.py).
# A backbone part (backbones/*_dcn.py) mixes it in: `model = dict(backbone={{_base_.dcn_backbone}})`.
dcn_backbone = dict(dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
                    stage_with_dcn=(False, True, True, True))
dcn_c4_c5 = (False, False, True, True)
