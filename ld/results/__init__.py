"""From metrics and models to what a person reads: tables (:mod:`ld.results.tables`), the paper's tables
(:mod:`ld.results.paper`), what DVC shows (:mod:`ld.results.summary`: headline metrics, overlaid curves),
the ambiguity analysis (:mod:`ld.results.analysis`) and its figure (:mod:`ld.results.ambiguity_figure`,
:mod:`ld.results.show` for any image), executed notebooks (:mod:`ld.results.notebooks`) and HTML reports
(:mod:`ld.results.report`)."""
