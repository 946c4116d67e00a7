"""The grading plugin and handout builder for the warblr lab."""
