# Deformable convolutions v2 in stages c3-c5 of a ResNe(X)t / Res2Net backbone, as the LD README's
# "-DCN" rows (its note [3]). A row mixes it in: `model = dict(backbone={{_base_.dcn_backbone}})`.
dcn_backbone = dict(dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
                    stage_with_dcn=(False, True, True, True))
