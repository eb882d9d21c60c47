"""The fault suite: each test provokes one fault for real and checks that nothing is lost."""
