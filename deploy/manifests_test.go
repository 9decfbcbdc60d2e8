package deploy_test

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	ktypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/classroute/classroute/router/authz"
)

// cert-manager's API types live in its main module, with its
// controllers, cloud DNS clients and client-go; these structs are the
// part of cert-manager.io/v1 the manifests use, with cert-manager's JSON
// names, so that any other field is an unknown field. Add a field here
// (as cert-manager spells it) before using it in a manifest.
type (
	cmIssuer struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			CA *struct {
				SecretName string `json:"secretName"`
			} `json:"ca,omitempty"`
		} `json:"spec"`
	}
	cmCertificate struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              cmCertificateSpec `json:"spec"`
	}
	cmCertificateSpec struct {
		SecretName  string           `json:"secretName"`
		IssuerRef   cmIssuerRef      `json:"issuerRef"`
		CommonName  string           `json:"commonName,omitempty"`
		DNSNames    []string         `json:"dnsNames,omitempty"`
		URIs        []string         `json:"uris,omitempty"`
		Duration    *metav1.Duration `json:"duration,omitempty"`
		RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
		Usages      []string         `json:"usages,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
	}
	cmIssuerRef struct {
		Name  string `json:"name"`
		Kind  string `json:"kind,omitempty"`
		Group string `json:"group,omitempty"`
	}
)

// cert-manager's enumerations, for the fields the structs above type as
// strings (cert-manager.io/v1 KeyUsage, PrivateKeyAlgorithm,
// PrivateKeyRotationPolicy).
var (
	cmUsages = []string{"signing", "digital signature", "content commitment", "key encipherment",
		"key agreement", "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only",
		"any", "server auth", "client auth", "code signing", "email protection", "s/mime",
		"ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
		"microsoft sgc", "netscape sgc"}
	cmAlgorithms       = []string{"RSA", "ECDSA", "Ed25519"}
	cmRotationPolicies = []string{"Never", "Always"}
)

// kinds are the types a manifest may be, by apiVersion and kind.
var kinds = map[string]func() any{
	"v1/Namespace":                                  func() any { return new(corev1.Namespace) },
	"v1/Service":                                    func() any { return new(corev1.Service) },
	"v1/Secret":                                     func() any { return new(corev1.Secret) },
	"v1/ConfigMap":                                  func() any { return new(corev1.ConfigMap) },
	"apps/v1/Deployment":                            func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                           func() any { return new(appsv1.StatefulSet) },
	"policy/v1/PodDisruptionBudget":                 func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy":            func() any { return new(networkingv1.NetworkPolicy) },
	"monitoring.coreos.com/v1/ServiceMonitor":       func() any { return new(monitoringv1.ServiceMonitor) },
	"monitoring.coreos.com/v1/PrometheusRule":       func() any { return new(monitoringv1.PrometheusRule) },
	"cert-manager.io/v1/Issuer":                     func() any { return new(cmIssuer) },
	"cert-manager.io/v1/Certificate":                func() any { return new(cmCertificate) },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return new(ktypes.Kustomization) },
}

// decodeStrict decodes one YAML document into the type of its kind as
// the API server's strict decoding does: an unknown field, a field
// spelled in another case, or a key given twice is an error.
func decodeStrict(doc []byte) (any, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	var tm metav1.TypeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(j, &tm); err != nil {
		return nil, err
	}
	newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("unknown kind %s %q", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	strict, err := kjson.UnmarshalStrict(j, obj)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(strict...); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// splitYAML returns the documents of a multi-document YAML file.
func splitYAML(t *testing.T, b []byte) [][]byte {
	t.Helper()
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

// Every document of every file in deploy/k8s decodes strictly into its
// Kubernetes API type (or the CRD's).
func TestManifestsDecodeStrictly(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if len(files) < 6 {
		t.Fatalf("only %v in deploy/k8s", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs := splitYAML(t, b)
		if len(docs) == 0 {
			t.Errorf("%s: no documents", f)
		}
		for i, doc := range docs {
			if _, err := decodeStrict(doc); err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
			}
		}
	}
}

// The strict decoding refuses what a lenient one would silently drop.
func TestDecodeStrictRefuses(t *testing.T) {
	const good = `apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  ports:
    - {name: grpc, port: 7400}
`
	if _, err := decodeStrict([]byte(good)); err != nil {
		t.Fatalf("the baseline: %v", err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown field", "port: 7400", "port: 7400, tragetPort: grpc", `unknown field "spec.ports[0].tragetPort"`},
		{"field in another case", "port: 7400", "Port: 7400", `unknown field "spec.ports[0].Port"`},
		{"key twice", "port: 7400", "port: 7400, port: 7401", "already set"},
		{"wrong type", "port: 7400", "port: seventy", "cannot unmarshal"},
		{"unknown kind", "kind: Service", "kind: Sevrice", `unknown kind v1 "Sevrice"`},
		{"CRD unknown field", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n    - {name: grpc, port: 7400}\n",
			"apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec: {secretName: c, issuerRef: {name: i}, dnsName: [a]}\n",
			`unknown field "spec.dnsName"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(good, tc.from, tc.to, 1)
			_, err := decodeStrict([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// rendered is deploy/k8s as kustomize renders it, decoded strictly.
type rendered struct {
	t    *testing.T
	objs []any
}

func render(t *testing.T) *rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "k8s")
	if err != nil {
		t.Fatalf("kustomize build deploy/k8s: %v", err)
	}
	r := &rendered{t: t}
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decodeStrict(y)
		if err != nil {
			t.Errorf("rendered %s %s: %v", res.GetKind(), res.GetName(), err)
			continue
		}
		r.objs = append(r.objs, obj)
	}
	return r
}

// all are the rendered objects of type T.
func all[T any](r *rendered) []*T {
	var out []*T
	for _, o := range r.objs {
		if x, ok := o.(*T); ok {
			out = append(out, x)
		}
	}
	return out
}

// one is the rendered object of type T named name.
func one[T any](r *rendered, name string) *T {
	r.t.Helper()
	for _, x := range all[T](r) {
		if any(x).(metav1.Object).GetName() == name {
			return x
		}
	}
	var zero T
	r.t.Fatalf("no %T named %s in the rendered kustomization", zero, name)
	return nil
}

// container is the named container of a pod template.
func container(t *testing.T, pod corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range pod.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

// flagValue is the value of --name=value among args.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "", true
		}
	}
	return "", false
}

// kubectl apply -k deploy/k8s applies what this renders: every object
// decodes strictly, lands in the namespace classroute, and the pieces
// refer to each other by names that exist.
func TestKustomizationRenders(t *testing.T) {
	r := render(t)
	const ns = "classroute"
	kindsSeen := map[string]int{}
	for _, o := range r.objs {
		m := o.(metav1.Object)
		kind := fmt.Sprintf("%T", o)
		kindsSeen[kind]++
		switch o.(type) {
		case *corev1.Namespace:
			if m.GetName() != ns {
				t.Errorf("Namespace %s; want %s", m.GetName(), ns)
			}
		default:
			if m.GetNamespace() != ns {
				t.Errorf("%s %s is in namespace %q; want %s", kind, m.GetName(), m.GetNamespace(), ns)
			}
		}
	}
	for _, want := range []string{"*v1.Deployment", "*v1.StatefulSet", "*v1.ServiceMonitor", "*v1.PrometheusRule",
		"*deploy_test.cmCertificate", "*deploy_test.cmIssuer", "*v1.NetworkPolicy", "*v1.Secret"} {
		if kindsSeen[want] == 0 {
			t.Errorf("the kustomization renders no %s (it renders %v)", want, kindsSeen)
		}
	}

	d := one[appsv1.Deployment](r, "classrouted")
	c := container(t, d.Spec.Template.Spec, "classrouted")
	if c.Image != "classroute/classroute:latest" {
		t.Errorf("classrouted image %q; want the kustomization's classroute/classroute:latest", c.Image)
	}
	s := one[appsv1.StatefulSet](r, "classroute-etcd")

	// Every Secret a pod mounts is one the kustomization makes: a
	// Certificate's, or the generated audit key.
	made := map[string]string{}
	for _, cert := range all[cmCertificate](r) {
		made[cert.Spec.SecretName] = "Certificate " + cert.Name
	}
	for _, sec := range all[corev1.Secret](r) {
		made[sec.Name] = "Secret " + sec.Name
	}
	for _, pod := range []corev1.PodSpec{d.Spec.Template.Spec, s.Spec.Template.Spec} {
		for _, v := range pod.Volumes {
			if v.Secret != nil && made[v.Secret.SecretName] == "" {
				t.Errorf("volume %s mounts Secret %s, which nothing in the kustomization makes", v.Name, v.Secret.SecretName)
			}
		}
	}
	issuers := map[string]bool{}
	for _, is := range all[cmIssuer](r) {
		issuers[is.Name] = true
		if is.Spec.CA == nil || is.Spec.CA.SecretName == "" {
			t.Errorf("Issuer %s names no CA Secret", is.Name)
		}
	}
	for _, cert := range all[cmCertificate](r) {
		checkCertificate(t, cert, issuers)
	}

	checkTLS(t, r, d, c)
	checkEtcdNames(t, r, c, s)
	checkAuditKey(t, r, d, c)
	checkMetrics(t, r, d, c)
	checkNetworkPolicies(t, r, d, s)
}

func checkCertificate(t *testing.T, cert *cmCertificate, issuers map[string]bool) {
	t.Helper()
	sp := cert.Spec
	if ref := sp.IssuerRef; !(ref.Kind == "Issuer" && issuers[ref.Name]) && ref.Kind != "ClusterIssuer" {
		t.Errorf("Certificate %s: issuer %s %s is not in the kustomization", cert.Name, ref.Kind, ref.Name)
	}
	if len(sp.DNSNames)+len(sp.URIs) == 0 && sp.CommonName == "" {
		t.Errorf("Certificate %s names nothing", cert.Name)
	}
	for _, u := range sp.Usages {
		if !slices.Contains(cmUsages, u) {
			t.Errorf("Certificate %s: usage %q is not one of cert-manager's", cert.Name, u)
		}
	}
	if pk := sp.PrivateKey; pk != nil {
		if !slices.Contains(cmAlgorithms, pk.Algorithm) || !slices.Contains(cmRotationPolicies, pk.RotationPolicy) {
			t.Errorf("Certificate %s: private key %+v", cert.Name, *pk)
		}
	}
	if sp.Duration == nil || sp.RenewBefore == nil || sp.RenewBefore.Duration >= sp.Duration.Duration {
		t.Errorf("Certificate %s: renewBefore %v not below duration %v", cert.Name, sp.RenewBefore, sp.Duration)
	}
}

// The daemon serves the certificate of the Secret mounted where
// --tls-cert points, naming its Service; agents' certificates carry one
// SPIFFE ID of the daemon's trust domain, which classrouted reads as an
// agent.
func checkTLS(t *testing.T, r *rendered, d *appsv1.Deployment, c corev1.Container) {
	t.Helper()
	certFile, _ := flagValue(c.Args, "tls-cert")
	caFile, _ := flagValue(c.Args, "tls-client-ca")
	secret := mountedSecret(t, d.Spec.Template.Spec, c, certFile)
	if mountedSecret(t, d.Spec.Template.Spec, c, caFile) != secret {
		t.Errorf("--tls-client-ca %s is not from the Secret of --tls-cert, %s", caFile, secret)
	}
	var server *cmCertificate
	for _, cert := range all[cmCertificate](r) {
		if cert.Spec.SecretName == secret {
			server = cert
		}
	}
	if server == nil {
		t.Fatalf("no Certificate makes the daemon's Secret %s", secret)
	}
	leaf := &x509.Certificate{DNSNames: server.Spec.DNSNames}
	svc := one[corev1.Service](r, "classrouted")
	for _, host := range []string{svc.Name, svc.Name + "." + svc.Namespace + ".svc", svc.Name + "." + svc.Namespace + ".svc.cluster.local"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("Certificate %s: %v", server.Name, err)
		}
	}
	if !slices.Contains(server.Spec.Usages, "server auth") {
		t.Errorf("Certificate %s lacks server auth", server.Name)
	}

	td, _ := flagValue(c.Args, "trust-domain")
	agents := 0
	for _, cert := range all[cmCertificate](r) {
		if len(cert.Spec.URIs) == 0 {
			continue
		}
		if len(cert.Spec.URIs) != 1 || len(cert.Spec.DNSNames) > 0 {
			t.Errorf("Certificate %s: %d URIs and %d DNS names; classrouted wants exactly one SPIFFE ID", cert.Name, len(cert.Spec.URIs), len(cert.Spec.DNSNames))
			continue
		}
		p, err := authz.ParseID(cert.Spec.URIs[0], td)
		if err != nil {
			t.Errorf("Certificate %s: classrouted (--trust-domain=%s) refuses its identity: %v", cert.Name, td, err)
			continue
		}
		if p.Kind == authz.KindAgent {
			agents++
		}
		if !slices.Contains(cert.Spec.Usages, "client auth") {
			t.Errorf("Certificate %s lacks client auth", cert.Name)
		}
	}
	if agents == 0 {
		t.Errorf("no agent Certificate (spiffe://%s/agent/P/REGION)", td)
	}
}

// mountedSecret is the Secret mounted in c at the directory of file.
func mountedSecret(t *testing.T, pod corev1.PodSpec, c corev1.Container, file string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if filepath.Dir(file) == filepath.Clean(m.MountPath) {
			if m.SubPath != "" {
				t.Errorf("%s is mounted with subPath: the kubelet never updates it", m.MountPath)
			}
			for _, v := range pod.Volumes {
				if v.Name == m.Name && v.Secret != nil {
					return v.Secret.SecretName
				}
			}
		}
	}
	t.Fatalf("%s is in no mounted Secret of %s", file, c.Name)
	return ""
}

// The etcd members' certificate names every address classrouted and the
// members dial.
func checkEtcdNames(t *testing.T, r *rendered, c corev1.Container, s *appsv1.StatefulSet) {
	t.Helper()
	ec := container(t, s.Spec.Template.Spec, "etcd")
	certFile, _ := flagValue(ec.Args, "cert-file")
	secret := mountedSecret(t, s.Spec.Template.Spec, ec, certFile)
	var names []string
	for _, cert := range all[cmCertificate](r) {
		if cert.Spec.SecretName == secret {
			names = cert.Spec.DNSNames
		}
	}
	leaf := &x509.Certificate{DNSNames: names}
	endpoints, _ := flagValue(c.Args, "etcd")
	hosts := strings.Split(endpoints, ",")
	adv, _ := flagValue(ec.Args, "advertise-client-urls")
	peer, _ := flagValue(ec.Args, "initial-advertise-peer-urls")
	for _, u := range []string{adv, peer} {
		u = strings.NewReplacer("https://", "", "$(POD_NAME)", s.Name+"-0", "$(POD_NAMESPACE)", s.Namespace).Replace(u)
		hosts = append(hosts, u)
	}
	for _, h := range hosts {
		host, _, err := net.SplitHostPort(h)
		if err != nil {
			t.Errorf("etcd address %q: %v", h, err)
			continue
		}
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("etcd's certificate (Secret %s): %v", secret, err)
		}
	}
}

// --audit-key names a file of the generated Secret, whose name the
// Deployment carries with its content hash.
func checkAuditKey(t *testing.T, r *rendered, d *appsv1.Deployment, c corev1.Container) {
	t.Helper()
	file, ok := flagValue(c.Args, "audit-key")
	if !ok {
		t.Fatalf("classrouted runs without --audit-key")
	}
	name := mountedSecret(t, d.Spec.Template.Spec, c, file)
	if !strings.HasPrefix(name, "classroute-audit-key-") {
		t.Errorf("the audit key's Secret is %s; want the generated classroute-audit-key-<hash>", name)
	}
	sec := one[corev1.Secret](r, name)
	if _, ok := sec.Data[filepath.Base(file)]; !ok {
		t.Errorf("Secret %s has no %s", name, filepath.Base(file))
	}
}

// Prometheus reaches each pod's metrics port: --metrics-listen's port
// is the container port the metrics Service targets, and the
// ServiceMonitor selects that Service and names that port.
func checkMetrics(t *testing.T, r *rendered, d *appsv1.Deployment, c corev1.Container) {
	t.Helper()
	listen, _ := flagValue(c.Args, "metrics-listen")
	if _, ok := flagValue(c.Args, "metrics-allow-remote"); !ok {
		t.Errorf("--metrics-listen=%s without --metrics-allow-remote", listen)
	}
	_, port, _ := net.SplitHostPort(listen)
	var cport int32
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			cport = p.ContainerPort
		}
	}
	if strconv.Itoa(int(cport)) != port || port == "" {
		t.Errorf("container port metrics %d; --metrics-listen=%s", cport, listen)
	}
	sm := one[monitoringv1.ServiceMonitor](r, "classrouted")
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	var svc *corev1.Service
	for _, s := range all[corev1.Service](r) {
		if sel.Matches(labels.Set(s.Labels)) {
			if svc != nil {
				t.Errorf("the ServiceMonitor selects both %s and %s", svc.Name, s.Name)
			}
			svc = s
		}
	}
	if svc == nil {
		t.Fatalf("the ServiceMonitor selects no Service")
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service %s does not select the classrouted pods", svc.Name)
	}
	for _, ep := range sm.Spec.Endpoints {
		for _, d := range []monitoringv1.Duration{ep.Interval, ep.ScrapeTimeout} {
			if _, err := model.ParseDuration(string(d)); d != "" && err != nil {
				t.Errorf("ServiceMonitor endpoint %s: %v", ep.Port, err)
			}
		}
		found := false
		for _, p := range svc.Spec.Ports {
			if p.Name == ep.Port && p.TargetPort.String() == "metrics" {
				found = true
			}
		}
		if !found {
			t.Errorf("ServiceMonitor endpoint port %q is not a port of %s targeting metrics", ep.Port, svc.Name)
		}
	}
}

// The NetworkPolicies deny by default and open only what must talk.
func checkNetworkPolicies(t *testing.T, r *rendered, d *appsv1.Deployment, s *appsv1.StatefulSet) {
	t.Helper()
	deny := one[networkingv1.NetworkPolicy](r, "default-deny")
	if len(deny.Spec.PodSelector.MatchLabels)+len(deny.Spec.PodSelector.MatchExpressions) != 0 ||
		len(deny.Spec.Ingress)+len(deny.Spec.Egress) != 0 || len(deny.Spec.PolicyTypes) != 2 {
		t.Errorf("default-deny does not deny all ingress and egress of every pod: %+v", deny.Spec)
	}
	daemon := labels.Set(d.Spec.Template.Labels)
	etcd := labels.Set(s.Spec.Template.Labels)
	prometheus := labels.Set{"app.kubernetes.io/name": "prometheus"}
	other := labels.Set{"app": "other"}
	for _, tc := range []struct {
		what     string
		from, to labels.Set // nil from: any source
		port     int
		want     bool
	}{
		{"clients to the daemons' gRPC port", nil, daemon, 7400, true},
		{"Prometheus to the daemons' metrics", prometheus, daemon, 9400, true},
		{"anyone else to the daemons' metrics", other, daemon, 9400, false},
		{"anyone to the daemons' health port", other, daemon, 7401, false},
		{"daemons to etcd's client port", daemon, etcd, 2379, true},
		{"members to their peers", etcd, etcd, 2380, true},
		{"daemons to etcd's peer port", daemon, etcd, 2380, false},
		{"anyone else to etcd", other, etcd, 2379, false},
	} {
		if got := ingressAllowed(all[networkingv1.NetworkPolicy](r), tc.from, tc.to, tc.port); got != tc.want {
			t.Errorf("%s (port %d): allowed %t; want %t", tc.what, tc.port, got, tc.want)
		}
	}
}

// ingressAllowed evaluates the policies for a TCP connection to a pod
// labelled to, on port, from a pod labelled from (in the monitoring
// namespace when it is Prometheus, else in the same namespace; nil: from
// outside the cluster).
func ingressAllowed(pols []*networkingv1.NetworkPolicy, from, to labels.Set, port int) bool {
	fromNS := labels.Set{"kubernetes.io/metadata.name": "classroute"}
	if from["app.kubernetes.io/name"] == "prometheus" {
		fromNS = labels.Set{"kubernetes.io/metadata.name": "monitoring"}
	}
	for _, p := range pols {
		sel, _ := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if !sel.Matches(to) || !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		for _, rule := range p.Spec.Ingress {
			portOK := len(rule.Ports) == 0
			for _, rp := range rule.Ports {
				if rp.Port != nil && rp.Port.IntValue() == port && (rp.Protocol == nil || *rp.Protocol == corev1.ProtocolTCP) {
					portOK = true
				}
			}
			peerOK := len(rule.From) == 0
			for _, peer := range rule.From {
				if from == nil || peer.IPBlock != nil {
					continue
				}
				podOK, nsOK := true, peer.NamespaceSelector == nil && fromNS["kubernetes.io/metadata.name"] == "classroute"
				if peer.PodSelector != nil {
					ps, _ := metav1.LabelSelectorAsSelector(peer.PodSelector)
					podOK = ps.Matches(from)
				}
				if peer.NamespaceSelector != nil {
					ns, _ := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
					nsOK = ns.Matches(fromNS)
				}
				if podOK && nsOK {
					peerOK = true
				}
			}
			if portOK && peerOK {
				return true
			}
		}
	}
	return false
}

// The alerts an operator needs are there, on the metrics the daemon
// exports, each with a severity, a summary, a description and a
// runbook whose templates parse. (The expressions are not parsed as
// PromQL: github.com/prometheus/prometheus, its parser's module, is far
// heavier than this test is worth; see TestAlertExpressions.)
func TestAlertRules(t *testing.T) {
	r := render(t)
	rule := one[monitoringv1.PrometheusRule](r, "classrouted")
	byMetric := map[string]bool{}
	funcs := template.FuncMap{}
	for _, f := range []string{"humanize", "humanizeDuration", "humanizePercentage", "humanizeTimestamp", "query", "first", "value", "label", "printf", "title", "toUpper", "toLower"} {
		funcs[f] = func(...any) any { return nil }
	}
	for _, g := range rule.Spec.Groups {
		for _, a := range g.Rules {
			expr := a.Expr.String()
			if a.Alert == "" || expr == "" {
				t.Errorf("group %s: a rule without alert name or expression: %+v", g.Name, a)
				continue
			}
			for _, m := range strings.FieldsFunc(expr, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z') }) {
				if strings.HasPrefix(m, "classroute_") {
					byMetric[m] = true
				}
			}
			if a.For != nil {
				if _, err := model.ParseDuration(string(*a.For)); err != nil {
					t.Errorf("%s: for %q: %v", a.Alert, *a.For, err)
				}
			}
			if sev := a.Labels["severity"]; sev != "critical" && sev != "warning" {
				t.Errorf("%s: severity %q; want critical or warning", a.Alert, sev)
			}
			for _, k := range []string{"summary", "description", "runbook"} {
				text := a.Annotations[k]
				if strings.TrimSpace(text) == "" {
					t.Errorf("%s has no %s", a.Alert, k)
				}
				// Prometheus expands annotations as Go templates
				// with $labels and $value defined.
				if _, err := template.New(a.Alert).Funcs(funcs).Parse("{{$labels := .Labels}}{{$value := .Value}}" + text); err != nil {
					t.Errorf("%s: %s: %v", a.Alert, k, err)
				}
			}
		}
	}
	for _, m := range []string{
		"classroute_store_ready",
		"classroute_reconciler_leader",
		"classroute_placements_violating",
		"classroute_placements_stranded",
		"classroute_accreditation_expiry_seconds",
		"classroute_audit_chain_lag_seconds",
	} {
		if !byMetric[m] {
			t.Errorf("no alert on %s", m)
		}
	}
	// Every metric an alert reads is one the daemon exports: its name is
	// declared in router/metrics (a renamed metric would leave the alert
	// silently never firing).
	src, err := os.ReadFile(filepath.Join("..", "router", "metrics", "metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	for m := range byMetric {
		if !strings.Contains(string(src), `"`+m+`"`) {
			t.Errorf("an alert reads %s, which router/metrics does not export", m)
		}
	}
}

// Without a PromQL parser, the expressions are at least balanced and
// compare what they measure.
func TestAlertExpressions(t *testing.T) {
	r := render(t)
	for _, g := range one[monitoringv1.PrometheusRule](r, "classrouted").Spec.Groups {
		for _, a := range g.Rules {
			expr := a.Expr.String()
			depth := 0
			for _, c := range expr {
				switch c {
				case '(':
					depth++
				case ')':
					depth--
				}
				if depth < 0 {
					break
				}
			}
			if depth != 0 {
				t.Errorf("%s: unbalanced parentheses in %q", a.Alert, expr)
			}
			if !strings.HasPrefix(expr, "absent(") && !strings.ContainsAny(expr, "<>=!") {
				t.Errorf("%s: %q compares nothing: it would fire for every series", a.Alert, expr)
			}
		}
	}
}
