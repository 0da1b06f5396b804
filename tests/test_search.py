"""The recorded search tree is the search whisper ran."""

STATUSES = {"root", "kept", "finished", "pruned", "alternative"}


def _check_tree_shape(tree):
    assert tree.parent[0] == -1 and tree.status[0] == "root"
    for i in range(1, len(tree)):
        assert 0 <= tree.parent[i] < i  # parents come first
        assert tree.step[i] == tree.step[tree.parent[i]] + 1
        assert tree.status[i] in STATUSES


def test_beam_tree_chosen_path_spells_final_text(beam_trace):
    final = beam_trace.windows[0].final
    tree = final.tree
    _check_tree_shape(tree)
    path_tokens = [tree.token[i] for i in tree.chosen_path]
    assert path_tokens[:-1] == final.tokens and tree.status[tree.chosen_path[-1]] == "finished"
    for parent, child in zip(tree.chosen_path, tree.chosen_path[1:]):
        assert tree.parent[child] == parent


def test_beam_tree_keeps_beam_size_candidates_each_step_and_ranks_finalists(beam_trace):
    tree = beam_trace.windows[0].final.tree
    kept_per_step = {}
    for step, status in zip(tree.step, tree.status):
        if status == "kept":
            kept_per_step[step] = kept_per_step.get(step, 0) + 1
    assert max(kept_per_step.values()) == 4 and set(kept_per_step.values()) <= {1, 2, 3, 4}
    assert "pruned" in tree.status
    selected = [f for f in tree.finalists if f.selected]
    assert len(selected) == 1 and len(tree.finalists) >= 4
    assert selected[0].score == max(f.score for f in tree.finalists)
    assert selected[0].node == tree.chosen_path[-1]
    # cumulative log-probability is the sum along the path
    node = tree.chosen_path[-1]
    total = 0.0
    while tree.parent[node] != -1:
        total += tree.logprob[node]
        node = tree.parent[node]
    assert abs(total - tree.cum_logprob[tree.chosen_path[-1]]) < 1e-3


def test_greedy_tree_is_one_path_with_the_runners_up_as_side_branches(greedy_trace):
    final = greedy_trace.windows[0].final
    tree = final.tree
    _check_tree_shape(tree)
    assert [tree.token[i] for i in tree.chosen_path][:-1] == final.tokens
    assert set(tree.status) == {"root", "kept", "alternative", "finished"}
    on_path = set(tree.chosen_path) | {0}
    assert all(tree.parent[i] in on_path for i in range(1, len(tree)))
    assert sum(s == "alternative" for s in tree.status) == 9 * len(tree.chosen_path)
