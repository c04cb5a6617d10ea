"""The views of one panel, as one bundle the controller and the display are given."""

from __future__ import annotations

import dataclasses

import ipywidgets as w

from .controls import Controls
from .dag_view import DagView
from .errors_view import ErrorsView
from .history_view import HistoryView
from .node_details import NodeDetails
from .node_feedback import NodeFeedbackView
from .proposal_view import ProposalList
from .restore_offer import RestoreOffer
from .status_bar import StatusBar
from .versions_view import VersionsView

__all__ = ["PanelViews"]


@dataclasses.dataclass
class PanelViews:
    """The panel's views; each is a widget that emits events (see its module)."""

    header: w.HTML
    restore_offer: RestoreOffer
    dag: DagView
    details: NodeDetails
    node_feedback: NodeFeedbackView
    versions: VersionsView
    output: w.HTML
    controls: Controls
    status: StatusBar
    errors: ErrorsView
    proposals_heading: w.HTML
    proposals: ProposalList
    history: HistoryView
