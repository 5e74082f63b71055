"""The model card page's clustering and anomaly sections."""

from mlkube.ml import cardpage, cardpage_tasks

CLUSTERS = {
    "k": 2,
    "profiles": [
        {"cluster": 0, "size": 846, "share": 0.705, "means": {"frequency": 1.42, "monetary": 44.06}},
        {"cluster": 1, "size": 354, "share": 0.295, "means": {"frequency": 6.64, "monetary": 290.31}},
    ],
}


def test_a_clustering_card_shows_each_cluster_with_its_size_and_feature_means():
    page = cardpage.render({"clusters": CLUSTERS, "lineage": {"project": "segments"}})
    assert "<section id='clusters'><h2>Clusters</h2>" in page
    assert "<th>mean monetary</th>" in page and "<td class='n'>354</td>" in page and "290.3100" in page
    assert "id='anomaly'" not in page


def test_an_anomaly_card_says_how_its_threshold_was_set():
    section = cardpage_tasks.anomaly({"anomaly": {"threshold": 0.56, "spread": 0.06, "thresholdFrom": "validationLabels"}})
    assert "maximises f1 on the validation labels" in section and "0.56" in section


def test_cards_of_other_tasks_have_no_task_sections():
    assert cardpage_tasks.clusters({}) == "" and cardpage_tasks.anomaly({"metrics": {}}) == ""
