"""PanelQL: one GraphQL API over hosting panels."""
