DROP TABLE meetings;
DROP TABLE rooms;
