// Package docs holds classroute's documentation pages; its tests check
// every Markdown file of the repository (balanced code fences, relative
// links and heading anchors that resolve) and that api.md is generated
// from the current protos.
package docs
