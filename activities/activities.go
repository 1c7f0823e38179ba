// Package activities holds every side effect the workflows perform, as
// methods on structs that carry their dependencies.
package activities
