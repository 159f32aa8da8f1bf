"""Published content rules: the operator's rules file, the decisions the rules take (always
labelled with the rule), and the audit log they are written to."""
