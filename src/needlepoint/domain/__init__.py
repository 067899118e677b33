"""Pure clinical domain: entities, rules, scoring, catalogues. No I/O beyond reading the
package's own data files; imports nothing from actions, queries, adapters or web."""
