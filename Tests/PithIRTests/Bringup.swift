// bring-up
