"""The patch and list metadata of the core/v1 built-in types, as data (the bulk of `patch_types.TYPES`).

Owns the `io.k8s.api.core.v1.*` entries of the table described in `patch_types` (same shape,
same upstream source, checked by the same regeneration test) and the `ATOMIC` marker they use.
Must not: hold behaviour or be read directly; callers look types up through `patch_types`.
"""

from __future__ import annotations

ATOMIC = "$atomic"  # a type marked `+structType=atomic` / `x-kubernetes-map-type: atomic`

CORE_V1: dict[str, dict] = {
    "io.k8s.api.core.v1.Affinity": {
        "nodeAffinity": {"type": "io.k8s.api.core.v1.NodeAffinity"},
        "podAffinity": {"type": "io.k8s.api.core.v1.PodAffinity"},
        "podAntiAffinity": {"type": "io.k8s.api.core.v1.PodAntiAffinity"},
    },
    "io.k8s.api.core.v1.CSIVolumeSource": {
        "nodePublishSecretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.CephFSVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.CinderVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.ClusterTrustBundleProjection": {
        "labelSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
    },
    "io.k8s.api.core.v1.ConfigMap": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    },
    "io.k8s.api.core.v1.ConfigMapKeySelector": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.Container": {
        "env": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.EnvVar",
        },
        "ports": {
            "listMapKeys": ["containerPort", "protocol"],
            "listType": "map",
            "patchMergeKey": "containerPort",
            "patchStrategy": "merge",
        },
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "volumeDevices": {
            "listMapKeys": ["devicePath"],
            "listType": "map",
            "patchMergeKey": "devicePath",
            "patchStrategy": "merge",
        },
        "volumeMounts": {"listMapKeys": ["mountPath"], "listType": "map", "patchMergeKey": "mountPath", "patchStrategy": "merge"},
    },
    "io.k8s.api.core.v1.ContainerStatus": {
        "allocatedResourcesStatus": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.ResourceStatus",
        },
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "volumeMounts": {"listMapKeys": ["mountPath"], "listType": "map", "patchMergeKey": "mountPath", "patchStrategy": "merge"},
    },
    "io.k8s.api.core.v1.DownwardAPIProjection": {
        "items": {"type": "io.k8s.api.core.v1.DownwardAPIVolumeFile"},
    },
    "io.k8s.api.core.v1.DownwardAPIVolumeFile": {
        "fieldRef": {"type": "io.k8s.api.core.v1.ObjectFieldSelector"},
        "resourceFieldRef": {"type": "io.k8s.api.core.v1.ResourceFieldSelector"},
    },
    "io.k8s.api.core.v1.DownwardAPIVolumeSource": {
        "items": {"type": "io.k8s.api.core.v1.DownwardAPIVolumeFile"},
    },
    "io.k8s.api.core.v1.EndpointAddress": {
        ATOMIC: True,
        "targetRef": {"type": "io.k8s.api.core.v1.ObjectReference"},
    },
    "io.k8s.api.core.v1.EndpointPort": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.EndpointSubset": {
        "addresses": {"type": "io.k8s.api.core.v1.EndpointAddress"},
        "notReadyAddresses": {"type": "io.k8s.api.core.v1.EndpointAddress"},
        "ports": {"type": "io.k8s.api.core.v1.EndpointPort"},
    },
    "io.k8s.api.core.v1.Endpoints": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "subsets": {"type": "io.k8s.api.core.v1.EndpointSubset"},
    },
    "io.k8s.api.core.v1.EnvVar": {
        "valueFrom": {"type": "io.k8s.api.core.v1.EnvVarSource"},
    },
    "io.k8s.api.core.v1.EnvVarSource": {
        "configMapKeyRef": {"type": "io.k8s.api.core.v1.ConfigMapKeySelector"},
        "fieldRef": {"type": "io.k8s.api.core.v1.ObjectFieldSelector"},
        "resourceFieldRef": {"type": "io.k8s.api.core.v1.ResourceFieldSelector"},
        "secretKeyRef": {"type": "io.k8s.api.core.v1.SecretKeySelector"},
    },
    "io.k8s.api.core.v1.EphemeralContainer": {
        "env": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.EnvVar",
        },
        "ports": {
            "listMapKeys": ["containerPort", "protocol"],
            "listType": "map",
            "patchMergeKey": "containerPort",
            "patchStrategy": "merge",
        },
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "volumeDevices": {
            "listMapKeys": ["devicePath"],
            "listType": "map",
            "patchMergeKey": "devicePath",
            "patchStrategy": "merge",
        },
        "volumeMounts": {"listMapKeys": ["mountPath"], "listType": "map", "patchMergeKey": "mountPath", "patchStrategy": "merge"},
    },
    "io.k8s.api.core.v1.EphemeralVolumeSource": {
        "volumeClaimTemplate": {"type": "io.k8s.api.core.v1.PersistentVolumeClaimTemplate"},
    },
    "io.k8s.api.core.v1.Event": {
        "involvedObject": {"type": "io.k8s.api.core.v1.ObjectReference"},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "related": {"type": "io.k8s.api.core.v1.ObjectReference"},
    },
    "io.k8s.api.core.v1.FlexVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.ISCSIVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.LocalObjectReference": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.Namespace": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "status": {"type": "io.k8s.api.core.v1.NamespaceStatus"},
    },
    "io.k8s.api.core.v1.NamespaceStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map", "patchMergeKey": "type", "patchStrategy": "merge"},
    },
    "io.k8s.api.core.v1.NodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.PreferredSchedulingTerm"},
        "requiredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.NodeSelector"},
    },
    "io.k8s.api.core.v1.NodeSelector": {
        ATOMIC: True,
        "nodeSelectorTerms": {"type": "io.k8s.api.core.v1.NodeSelectorTerm"},
    },
    "io.k8s.api.core.v1.NodeSelectorTerm": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.ObjectFieldSelector": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.ObjectReference": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec": {
        "dataSource": {"type": "io.k8s.api.core.v1.TypedLocalObjectReference"},
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
    },
    "io.k8s.api.core.v1.PersistentVolumeClaimTemplate": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.PersistentVolumeClaimSpec"},
    },
    "io.k8s.api.core.v1.Pod": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.PodSpec"},
        "status": {"type": "io.k8s.api.core.v1.PodStatus"},
    },
    "io.k8s.api.core.v1.PodAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.WeightedPodAffinityTerm"},
        "requiredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.PodAffinityTerm"},
    },
    "io.k8s.api.core.v1.PodAffinityTerm": {
        "labelSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "namespaceSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
    },
    "io.k8s.api.core.v1.PodAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.WeightedPodAffinityTerm"},
        "requiredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.PodAffinityTerm"},
    },
    "io.k8s.api.core.v1.PodSpec": {
        "affinity": {"type": "io.k8s.api.core.v1.Affinity"},
        "containers": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.Container",
        },
        "ephemeralContainers": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.EphemeralContainer",
        },
        "hostAliases": {"listMapKeys": ["ip"], "listType": "map", "patchMergeKey": "ip", "patchStrategy": "merge"},
        "imagePullSecrets": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.LocalObjectReference",
        },
        "initContainers": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.Container",
        },
        "nodeSelector": {"mapType": "atomic"},
        "resourceClaims": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge,retainKeys",
        },
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "schedulingGates": {"listMapKeys": ["name"], "listType": "map", "patchMergeKey": "name", "patchStrategy": "merge"},
        "topologySpreadConstraints": {
            "listMapKeys": ["topologyKey", "whenUnsatisfiable"],
            "listType": "map",
            "patchMergeKey": "topologyKey",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.TopologySpreadConstraint",
        },
        "volumes": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge,retainKeys",
            "type": "io.k8s.api.core.v1.Volume",
        },
    },
    "io.k8s.api.core.v1.PodStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map", "patchMergeKey": "type", "patchStrategy": "merge"},
        "containerStatuses": {"type": "io.k8s.api.core.v1.ContainerStatus"},
        "ephemeralContainerStatuses": {"type": "io.k8s.api.core.v1.ContainerStatus"},
        "hostIPs": {"patchMergeKey": "ip", "patchStrategy": "merge"},
        "initContainerStatuses": {"type": "io.k8s.api.core.v1.ContainerStatus"},
        "podIPs": {"listMapKeys": ["ip"], "listType": "map", "patchMergeKey": "ip", "patchStrategy": "merge"},
        "resourceClaimStatuses": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge,retainKeys",
        },
    },
    "io.k8s.api.core.v1.PodTemplateSpec": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.PodSpec"},
    },
    "io.k8s.api.core.v1.PreferredSchedulingTerm": {
        "preference": {"type": "io.k8s.api.core.v1.NodeSelectorTerm"},
    },
    "io.k8s.api.core.v1.ProjectedVolumeSource": {
        "sources": {"type": "io.k8s.api.core.v1.VolumeProjection"},
    },
    "io.k8s.api.core.v1.RBDVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.ResourceFieldSelector": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.ResourceRequirements": {
        "claims": {"listMapKeys": ["name"], "listType": "map"},
    },
    "io.k8s.api.core.v1.ResourceStatus": {
        "resources": {"listMapKeys": ["resourceID"], "listType": "map"},
    },
    "io.k8s.api.core.v1.ScaleIOVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.Secret": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    },
    "io.k8s.api.core.v1.SecretKeySelector": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.Service": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.ServiceSpec"},
        "status": {"type": "io.k8s.api.core.v1.ServiceStatus"},
    },
    "io.k8s.api.core.v1.ServiceAccount": {
        "imagePullSecrets": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "secrets": {
            "listMapKeys": ["name"],
            "listType": "map",
            "patchMergeKey": "name",
            "patchStrategy": "merge",
            "type": "io.k8s.api.core.v1.ObjectReference",
        },
    },
    "io.k8s.api.core.v1.ServiceSpec": {
        "ports": {"listMapKeys": ["port", "protocol"], "listType": "map", "patchMergeKey": "port", "patchStrategy": "merge"},
        "selector": {"mapType": "atomic"},
    },
    "io.k8s.api.core.v1.ServiceStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map", "patchMergeKey": "type", "patchStrategy": "merge"},
    },
    "io.k8s.api.core.v1.StorageOSVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.TopologySpreadConstraint": {
        "labelSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
    },
    "io.k8s.api.core.v1.TypedLocalObjectReference": {
        ATOMIC: True,
    },
    "io.k8s.api.core.v1.Volume": {
        "cephfs": {"type": "io.k8s.api.core.v1.CephFSVolumeSource"},
        "cinder": {"type": "io.k8s.api.core.v1.CinderVolumeSource"},
        "csi": {"type": "io.k8s.api.core.v1.CSIVolumeSource"},
        "downwardAPI": {"type": "io.k8s.api.core.v1.DownwardAPIVolumeSource"},
        "ephemeral": {"type": "io.k8s.api.core.v1.EphemeralVolumeSource"},
        "flexVolume": {"type": "io.k8s.api.core.v1.FlexVolumeSource"},
        "iscsi": {"type": "io.k8s.api.core.v1.ISCSIVolumeSource"},
        "projected": {"type": "io.k8s.api.core.v1.ProjectedVolumeSource"},
        "rbd": {"type": "io.k8s.api.core.v1.RBDVolumeSource"},
        "scaleIO": {"type": "io.k8s.api.core.v1.ScaleIOVolumeSource"},
        "storageos": {"type": "io.k8s.api.core.v1.StorageOSVolumeSource"},
    },
    "io.k8s.api.core.v1.VolumeProjection": {
        "clusterTrustBundle": {"type": "io.k8s.api.core.v1.ClusterTrustBundleProjection"},
        "downwardAPI": {"type": "io.k8s.api.core.v1.DownwardAPIProjection"},
    },
    "io.k8s.api.core.v1.WeightedPodAffinityTerm": {
        "podAffinityTerm": {"type": "io.k8s.api.core.v1.PodAffinityTerm"},
    },
    # Node and ReplicationController (served for the local node and the runtime's controllers).
    "io.k8s.api.core.v1.Node": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.NodeSpec"},
        "status": {"type": "io.k8s.api.core.v1.NodeStatus"},
    },
    "io.k8s.api.core.v1.NodeSpec": {"podCIDRs": {"patchStrategy": "merge", "listType": "set"}},
    "io.k8s.api.core.v1.NodeStatus": {
        "addresses": {"patchStrategy": "merge", "patchMergeKey": "type", "listType": "map", "listMapKeys": ["type"]},
        "conditions": {"patchStrategy": "merge", "patchMergeKey": "type", "listType": "map", "listMapKeys": ["type"]},
    },
    "io.k8s.api.core.v1.ReplicationController": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.ReplicationControllerSpec"},
        "status": {"type": "io.k8s.api.core.v1.ReplicationControllerStatus"},
    },
    "io.k8s.api.core.v1.ReplicationControllerSpec": {
        "selector": {"mapType": "atomic"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.core.v1.ReplicationControllerStatus": {
        "conditions": {"patchStrategy": "merge", "patchMergeKey": "type", "listType": "map", "listMapKeys": ["type"]},
    },
}
