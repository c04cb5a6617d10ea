"""The review panel and its parts (the only place in trace_nb that imports ipywidgets).

How the panel is built:

* **views**, each a widget in its own module that shows what it is given and emits
  events through ``on_<event>(callback)`` (:mod:`.events`); a view never holds the
  session nor calls another view:
  :mod:`.controls` (feedback box, Propose, Approve all, Reject all, Run again, Auto, Stop),
  :mod:`.status_bar` (progress, status line, Cancel), :mod:`.proposal_view` (the cards:
  approve, edit, reject, preview), :mod:`.node_feedback`, :mod:`.versions_view`,
  :mod:`.restore_offer`, :mod:`.errors_view`, :mod:`.dag_view`, :mod:`.node_details`,
  :mod:`.history_view`; :mod:`.train_view` shows a training run;
* **one controller**, :mod:`.controller`: registers the views' callbacks, calls the
  session's public methods, owns the background work (:mod:`.jobs`), the auto run
  (:mod:`.autorun`) and the status line's ticker; :mod:`.display` draws the session
  into the views for it;
* :mod:`.panel`: ``Panel``, one ``VBox`` that lays the views out, makes the controller,
  and offers every action as a method (``panel.approve("x")``).

``tests/test_panel_structure.py`` checks this: no module here touches another object's
private fields, no mixins, views import neither the controller nor the session's modules,
only the controller imports the auto run and the ticker.
"""
